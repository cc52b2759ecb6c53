/// The OpenAPI 3.1 document of the gateway's own API, served at `/gateway/openapi.json` and printed
/// by `redfire-gateway openapi`. A test checks that every route the gateway serves is documented here;
/// `.ci/run` validates it with openapi-spec-validator.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "RedFire Gateway",
    "version": "0.1.0",
    "description": "The gateway's own API: probes, metrics, authentication under /api/v1/auth and the admin API under /gateway. Every error the gateway produces uses the ErrorEnvelope schema."
  },
  "servers": [
    {
      "url": "/"
    }
  ],
  "tags": [
    {
      "name": "probes"
    },
    {
      "name": "auth"
    },
    {
      "name": "docs"
    },
    {
      "name": "admin"
    }
  ],
  "paths": {
    "/api/v1/auth/register": {
      "post": {
        "summary": "Create a user (201); 409 when the username is taken, 400 with field problems in details",
        "operationId": "register",
        "tags": [
          "auth"
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "allOf": [
                  {
                    "$ref": "#/components/schemas/Credentials"
                  }
                ],
                "properties": {
                  "email": {
                    "type": "string"
                  }
                }
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "created",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/User"
                }
              }
            }
          },
          "400": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/api/v1/auth/login": {
      "post": {
        "summary": "Exchange username and password for tokens; a wrong username and a wrong password answer the same 401",
        "operationId": "login",
        "tags": [
          "auth"
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Credentials"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "a new access token and refresh token",
            "headers": {},
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/TokenPair"
                }
              }
            }
          },
          "400": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "429": {
            "description": "too many failed logins; Retry-After says when to try again",
            "headers": {
              "Retry-After": {
                "schema": {
                  "type": "integer"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/api/v1/auth/refresh": {
      "post": {
        "summary": "Rotate a refresh token: the presented one is spent; presenting a spent one revokes its whole family",
        "operationId": "refresh",
        "tags": [
          "auth"
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "required": [
                  "refresh_token"
                ],
                "properties": {
                  "refresh_token": {
                    "type": "string"
                  }
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "a new access token and refresh token",
            "headers": {},
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/TokenPair"
                }
              }
            }
          },
          "400": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/api/v1/auth/logout": {
      "post": {
        "summary": "Revoke the caller's session: its refresh tokens and the access token presented",
        "operationId": "logout",
        "tags": [
          "auth"
        ],
        "responses": {
          "204": {
            "description": "logged out"
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "accessToken": []
          }
        ]
      }
    },
    "/api/v1/auth/me": {
      "get": {
        "summary": "The caller's identity, roles and permissions",
        "operationId": "me",
        "tags": [
          "auth"
        ],
        "responses": {
          "200": {
            "description": "identity",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Me"
                }
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "accessToken": []
          }
        ]
      }
    },
    "/health": {
      "get": {
        "summary": "Liveness: 200 while the process runs",
        "operationId": "health",
        "tags": [
          "probes"
        ],
        "responses": {
          "200": {
            "description": "alive",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "status": {
                      "type": "string"
                    }
                  }
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/gateway/jwks.json": {
      "get": {
        "summary": "Public keys (JWKS) that verify X-Gateway-Token and asymmetric access tokens",
        "operationId": "jwks",
        "tags": [
          "auth"
        ],
        "responses": {
          "200": {
            "description": "a JSON Web Key Set (RFC 7517); never contains a secret",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "keys": {
                      "type": "array",
                      "items": {
                        "type": "object",
                        "additionalProperties": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/ready": {
      "get": {
        "summary": "Readiness: 200 when at least one route has a healthy instance",
        "operationId": "ready",
        "tags": [
          "probes"
        ],
        "responses": {
          "200": {
            "description": "ready",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "status": {
                      "type": "string"
                    }
                  }
                }
              }
            }
          },
          "503": {
            "description": "not ready",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/metrics": {
      "get": {
        "summary": "Prometheus metrics (text format 0.0.4)",
        "operationId": "metrics",
        "tags": [
          "probes"
        ],
        "responses": {
          "200": {
            "description": "metrics",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/gateway/openapi.json": {
      "get": {
        "summary": "This document",
        "operationId": "openapi",
        "tags": [
          "docs"
        ],
        "responses": {
          "200": {
            "description": "the OpenAPI document",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/gateway/docs": {
      "get": {
        "summary": "Human-readable API reference (self-contained HTML)",
        "operationId": "docs",
        "tags": [
          "docs"
        ],
        "responses": {
          "200": {
            "description": "HTML page",
            "content": {
              "text/html": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/gateway/services": {
      "get": {
        "summary": "List services with their instances, states and recent figures",
        "operationId": "listServices",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "services",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "services"
                  ],
                  "properties": {
                    "services": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Service"
                      }
                    }
                  }
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/services/{name}": {
      "get": {
        "summary": "One service",
        "operationId": "getService",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "the service",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Service"
                }
              }
            }
          },
          "404": {
            "description": "no such service",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "description": "service name",
            "schema": {
              "type": "string"
            }
          }
        ],
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/services/{name}/instances": {
      "post": {
        "summary": "Register an instance, optionally with a lease",
        "operationId": "registerInstance",
        "tags": [
          "admin"
        ],
        "responses": {
          "201": {
            "description": "registered",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Instance"
                }
              }
            }
          },
          "400": {
            "description": "invalid body",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "404": {
            "description": "no such service",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "409": {
            "description": "id in use or defined in the file",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "description": "service name",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/RegisterInstance"
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/services/{name}/instances/{id}": {
      "delete": {
        "summary": "Deregister a registered instance; with drain=true, drain it first and remove it when nothing is in flight or the deadline passes",
        "operationId": "deregisterInstance",
        "tags": [
          "admin"
        ],
        "responses": {
          "202": {
            "description": "draining; removed when idle or at the deadline",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Instance"
                }
              }
            }
          },
          "204": {
            "description": "deregistered"
          },
          "404": {
            "description": "no such service or instance",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "409": {
            "description": "defined in the configuration file",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "description": "service name",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "instance id",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "drain",
            "in": "query",
            "required": false,
            "description": "true: drain first, deregister when nothing is in flight or at the deadline",
            "schema": {
              "type": "boolean"
            }
          },
          {
            "name": "deadline",
            "in": "query",
            "required": false,
            "description": "with drain=true: longest wait, a duration such as 30s (default 30s)",
            "schema": {
              "type": "string"
            }
          }
        ],
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/services/{name}/instances/{id}/heartbeat": {
      "put": {
        "summary": "Renew a registered instance's lease",
        "operationId": "heartbeat",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "renewed",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Instance"
                }
              }
            }
          },
          "404": {
            "description": "no such service or instance",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "description": "service name",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "instance id",
            "schema": {
              "type": "string"
            }
          }
        ],
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/services/{name}/instances/{id}/drain": {
      "post": {
        "summary": "Drain: no new requests; in-flight requests finish. With a deadline, the instance reads drained at the deadline even with requests still in flight (they are left to finish, never cut)",
        "operationId": "drainInstance",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "draining or drained",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Instance"
                }
              }
            }
          },
          "400": {
            "description": "the deadline is not a duration",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "404": {
            "description": "no such service or instance",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "description": "service name",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "instance id",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "deadline",
            "in": "query",
            "required": false,
            "description": "longest wait for in-flight requests, a duration such as 30s (or the body's deadline); default none",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "properties": {
                  "deadline": {
                    "type": "string",
                    "description": "a duration such as 30s"
                  }
                },
                "additionalProperties": false
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/services/{name}/instances/{id}/undrain": {
      "post": {
        "summary": "Return a drained instance to rotation",
        "operationId": "undrainInstance",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "in rotation",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Instance"
                }
              }
            }
          },
          "404": {
            "description": "no such service or instance",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "description": "service name",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "instance id",
            "schema": {
              "type": "string"
            }
          }
        ],
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/services/{name}/strategy": {
      "put": {
        "summary": "Switch the balancing strategy",
        "operationId": "setStrategy",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "the service",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Service"
                }
              }
            }
          },
          "400": {
            "description": "unknown strategy",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "404": {
            "description": "no such service",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "description": "service name",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/SetStrategy"
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/routes": {
      "get": {
        "summary": "List routes",
        "operationId": "listRoutes",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "routes",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "routes"
                  ],
                  "properties": {
                    "routes": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Route"
                      }
                    }
                  }
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway": {
      "get": {
        "summary": "The running gateway: the address it is bound to (the port --listen HOST:0 chose), open connections, uptime",
        "operationId": "gatewayInfo",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "the gateway",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/GatewayInfo"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          }
        ]
      }
    },
    "/gateway/stats": {
      "get": {
        "summary": "Counts, rates and latency over a window for the gateway and every route, service and instance",
        "operationId": "stats",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "stats",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Stats"
                }
              }
            }
          },
          "400": {
            "description": "bad window",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "window",
            "in": "query",
            "required": false,
            "description": "duration such as 10s, 1m, 15m (default 1m)",
            "schema": {
              "type": "string",
              "default": "1m"
            }
          }
        ],
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/audit": {
      "get": {
        "summary": "Operator actions: who, what, when, result",
        "operationId": "audit",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "entries",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "entries"
                  ],
                  "properties": {
                    "entries": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/AuditEntry"
                      }
                    }
                  }
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/events": {
      "get": {
        "summary": "Health transitions, ejections, drains, strategy changes, registrations, reloads",
        "operationId": "events",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "events",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "events"
                  ],
                  "properties": {
                    "events": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Event"
                      }
                    }
                  }
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    },
    "/gateway/config/reload": {
      "post": {
        "summary": "Re-read and apply the configuration file",
        "operationId": "reload",
        "tags": [
          "admin"
        ],
        "responses": {
          "200": {
            "description": "applied",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reload"
                }
              }
            }
          },
          "422": {
            "description": "refused; running configuration unchanged",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          },
          "403": {
            "description": "admin API disabled (no admin.token)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ErrorEnvelope"
                }
              }
            }
          }
        },
        "security": [
          {
            "adminToken": []
          },
          {
            "accessToken": []
          },
          {
            "apiKey": []
          }
        ]
      }
    }
  },
  "components": {
    "schemas": {
      "ErrorEnvelope": {
        "type": "object",
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "required": [
              "code",
              "message",
              "request_id"
            ],
            "properties": {
              "code": {
                "type": "string"
              },
              "message": {
                "type": "string"
              },
              "request_id": {
                "type": "string"
              },
              "details": {
                "description": "extra data for some errors: a refused reload's problems, a registration's invalid fields"
              }
            }
          }
        }
      },
      "Check": {
        "type": "object",
        "required": [
          "passed",
          "reason",
          "age_ms"
        ],
        "properties": {
          "passed": {
            "type": "boolean"
          },
          "reason": {
            "type": "string"
          },
          "age_ms": {
            "type": "integer"
          }
        }
      },
      "Instance": {
        "type": "object",
        "required": [
          "id",
          "url",
          "state",
          "health",
          "weight",
          "in_flight"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "url": {
            "type": "string"
          },
          "state": {
            "type": "string",
            "enum": [
              "unknown",
              "healthy",
              "unhealthy",
              "ejected",
              "draining",
              "drained"
            ]
          },
          "health": {
            "type": "string",
            "enum": [
              "unknown",
              "healthy",
              "unhealthy"
            ]
          },
          "weight": {
            "type": "integer"
          },
          "version": {
            "type": [
              "string",
              "null"
            ]
          },
          "metadata": {
            "type": "object",
            "additionalProperties": {
              "type": "string"
            }
          },
          "in_flight": {
            "type": "integer"
          },
          "dispatched": {
            "type": "integer"
          },
          "requests_per_second": {
            "type": "number"
          },
          "error_ratio": {
            "type": "number"
          },
          "p99_ms": {
            "type": [
              "number",
              "null"
            ]
          },
          "ejected_for_ms": {
            "type": [
              "integer",
              "null"
            ]
          },
          "lease_expires_in_ms": {
            "type": [
              "integer",
              "null"
            ]
          },
          "drain_deadline_in_ms": {
            "type": [
              "integer",
              "null"
            ],
            "description": "while draining with a deadline: time left until the instance reads drained anyway"
          },
          "last_checks": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Check"
            }
          }
        }
      },
      "Service": {
        "type": "object",
        "required": [
          "name",
          "strategy",
          "instances"
        ],
        "properties": {
          "name": {
            "type": "string"
          },
          "strategy": {
            "type": "string",
            "enum": [
              "round_robin",
              "random",
              "least_connections",
              "power_of_two",
              "consistent_hash"
            ]
          },
          "hash_key": {
            "type": "string"
          },
          "panic": {
            "type": "boolean"
          },
          "eligible_instances": {
            "type": "integer"
          },
          "requests_per_second": {
            "type": "number"
          },
          "error_ratio": {
            "type": "number"
          },
          "p99_ms": {
            "type": [
              "number",
              "null"
            ]
          },
          "instances": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Instance"
            }
          }
        }
      },
      "RegisterInstance": {
        "type": "object",
        "required": [
          "id",
          "url"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "url": {
            "type": "string",
            "description": "http://HOST:PORT"
          },
          "weight": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000
          },
          "version": {
            "type": "string"
          },
          "metadata": {
            "type": "object",
            "additionalProperties": {
              "type": "string"
            }
          },
          "lease_ttl": {
            "type": "string",
            "description": "duration such as 10s; without it the instance has no lease"
          }
        }
      },
      "SetStrategy": {
        "type": "object",
        "required": [
          "strategy"
        ],
        "properties": {
          "strategy": {
            "type": "string",
            "enum": [
              "round_robin",
              "random",
              "least_connections",
              "power_of_two",
              "consistent_hash"
            ]
          }
        }
      },
      "Route": {
        "type": "object",
        "required": [
          "name",
          "prefix",
          "service",
          "strip_prefix"
        ],
        "properties": {
          "name": {
            "type": "string"
          },
          "prefix": {
            "type": "string"
          },
          "service": {
            "type": "string"
          },
          "methods": {
            "type": [
              "array",
              "null"
            ],
            "items": {
              "type": "string"
            }
          },
          "strip_prefix": {
            "type": "boolean"
          },
          "version": {
            "type": [
              "string",
              "null"
            ]
          }
        }
      },
      "Latency": {
        "type": "object",
        "properties": {
          "p50": {
            "type": [
              "number",
              "null"
            ]
          },
          "p90": {
            "type": [
              "number",
              "null"
            ]
          },
          "p99": {
            "type": [
              "number",
              "null"
            ]
          },
          "p999": {
            "type": [
              "number",
              "null"
            ]
          },
          "max": {
            "type": [
              "number",
              "null"
            ]
          }
        }
      },
      "Window": {
        "type": "object",
        "properties": {
          "requests": {
            "type": "integer"
          },
          "status_2xx": {
            "type": "integer"
          },
          "status_3xx": {
            "type": "integer"
          },
          "status_4xx": {
            "type": "integer"
          },
          "status_5xx": {
            "type": "integer"
          },
          "unauthorized": {
            "type": "integer"
          },
          "forbidden": {
            "type": "integer"
          },
          "rate_limited": {
            "type": "integer"
          },
          "upstream_errors": {
            "type": "integer"
          },
          "upstream_timeouts": {
            "type": "integer"
          },
          "upstream_truncated": {
            "type": "integer",
            "description": "Responses the instance broke off after their head (also counted in upstream_errors)."
          },
          "bytes_in": {
            "type": "integer"
          },
          "bytes_out": {
            "type": "integer"
          },
          "requests_per_second": {
            "type": "number"
          },
          "latency_ms": {
            "$ref": "#/components/schemas/Latency"
          },
          "added_latency_ms": {
            "$ref": "#/components/schemas/Latency"
          }
        }
      },
      "GatewayInfo": {
        "type": "object",
        "required": [
          "listen",
          "port",
          "open_connections",
          "uptime_seconds",
          "generation"
        ],
        "properties": {
          "listen": {
            "type": "string",
            "description": "host:port the gateway is bound to"
          },
          "port": {
            "type": "integer"
          },
          "open_connections": {
            "type": "integer"
          },
          "uptime_seconds": {
            "type": "integer"
          },
          "generation": {
            "type": "integer"
          }
        }
      },
      "Stats": {
        "type": "object",
        "required": [
          "window",
          "window_seconds",
          "gateway",
          "routes",
          "services",
          "instances"
        ],
        "properties": {
          "window": {
            "type": "string"
          },
          "window_seconds": {
            "type": "integer"
          },
          "generation": {
            "type": "integer"
          },
          "gateway": {
            "$ref": "#/components/schemas/Window"
          },
          "routes": {
            "type": "object",
            "additionalProperties": {
              "$ref": "#/components/schemas/Window"
            }
          },
          "services": {
            "type": "object",
            "additionalProperties": {
              "$ref": "#/components/schemas/Window"
            }
          },
          "instances": {
            "type": "object",
            "additionalProperties": {
              "$ref": "#/components/schemas/Window"
            }
          }
        }
      },
      "AuditEntry": {
        "type": "object",
        "required": [
          "at",
          "actor",
          "action",
          "target",
          "result"
        ],
        "properties": {
          "at": {
            "type": "string",
            "format": "date-time"
          },
          "actor": {
            "type": "string"
          },
          "action": {
            "type": "string"
          },
          "target": {
            "type": "string"
          },
          "result": {
            "type": "string"
          }
        }
      },
      "Event": {
        "type": "object",
        "required": [
          "at",
          "kind",
          "message"
        ],
        "properties": {
          "at": {
            "type": "string",
            "format": "date-time"
          },
          "kind": {
            "type": "string"
          },
          "service": {
            "type": [
              "string",
              "null"
            ]
          },
          "instance": {
            "type": [
              "string",
              "null"
            ]
          },
          "message": {
            "type": "string"
          }
        }
      },
      "Reload": {
        "type": "object",
        "required": [
          "applied",
          "generation"
        ],
        "properties": {
          "applied": {
            "type": "boolean"
          },
          "generation": {
            "type": "integer"
          },
          "problems": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "path": {
                  "type": "string"
                },
                "line": {
                  "type": [
                    "integer",
                    "null"
                  ]
                },
                "message": {
                  "type": "string"
                }
              }
            }
          },
          "restart_required": {
            "type": "array",
            "items": {
              "type": "string"
            }
          }
        }
      },
      "Credentials": {
        "type": "object",
        "required": [
          "username",
          "password"
        ],
        "properties": {
          "username": {
            "type": "string",
            "minLength": 3,
            "maxLength": 32
          },
          "password": {
            "type": "string",
            "minLength": 10,
            "maxLength": 128
          }
        }
      },
      "TokenPair": {
        "type": "object",
        "required": [
          "access_token",
          "refresh_token",
          "token_type",
          "expires_in"
        ],
        "properties": {
          "access_token": {
            "type": "string",
            "description": "JWT (HS256, kid), lifetime expires_in seconds"
          },
          "refresh_token": {
            "type": "string"
          },
          "token_type": {
            "type": "string",
            "enum": [
              "Bearer"
            ]
          },
          "expires_in": {
            "type": "integer"
          }
        }
      },
      "User": {
        "type": "object",
        "required": [
          "id",
          "username",
          "roles",
          "created_at"
        ],
        "properties": {
          "id": {
            "type": "integer"
          },
          "username": {
            "type": "string"
          },
          "email": {
            "type": [
              "string",
              "null"
            ]
          },
          "roles": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "created_at": {
            "type": "string",
            "format": "date-time"
          }
        }
      },
      "Me": {
        "type": "object",
        "required": [
          "id",
          "username",
          "roles",
          "permissions"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "username": {
            "type": "string"
          },
          "roles": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "permissions": {
            "type": "array",
            "items": {
              "type": "string"
            }
          }
        }
      }
    },
    "securitySchemes": {
      "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "admin.token from the configuration (operators' break-glass credential)"
      },
      "accessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "access_token from /api/v1/auth/login; the admin API needs the gateway:admin permission (403 forbidden otherwise)"
      },
      "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "a key from `redfire-gateway keys create`; the admin API needs the gateway:admin permission"
      }
    }
  }
}
"""#
}

/// Public access to the gateway's API description.
public enum GatewayAPIDocument {
    /// The OpenAPI 3.1 document, as served at `/gateway/openapi.json`.
    public static var openAPIJSON: String { OpenAPIDocument.json }
}
