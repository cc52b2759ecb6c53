import ArgumentParser
import RedFireGateway
import DemoServices
print("x")
