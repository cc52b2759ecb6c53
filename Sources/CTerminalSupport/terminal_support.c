#define _GNU_SOURCE 1
#include "terminal_support.h"

#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_termios;
static volatile sig_atomic_t saved_termios_valid = 0;
static struct sigaction previous_actions[NSIG];
static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
static const unsigned crash_signal_count = sizeof(crash_signals) / sizeof(crash_signals[0]);

void redfire_save_terminal(int fd) {
    if (tcgetattr(fd, &saved_termios) == 0) saved_termios_valid = 1;
}

void redfire_restore_terminal_now(int fd) {
    static const char reset[] = "\033[0m\033[?25h\033[?1049l\r\n";
    ssize_t ignored = write(fd, reset, sizeof(reset) - 1);
    (void)ignored;
    if (saved_termios_valid) tcsetattr(fd, TCSANOW, &saved_termios);
}

static void crash_handler(int signal_number) {
    redfire_restore_terminal_now(STDOUT_FILENO);
    if (signal_number > 0 && signal_number < NSIG) sigaction(signal_number, &previous_actions[signal_number], NULL);
    raise(signal_number);
    // The previous handler returned (a crash reporter that leaves termination to the default action):
    // end the process the default way rather than let it run on with a broken terminal.
    struct sigaction default_action;
    memset(&default_action, 0, sizeof(default_action));
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(signal_number, &default_action, NULL);
    raise(signal_number);
}

void redfire_install_crash_handlers(void) {
    for (unsigned i = 0; i < crash_signal_count; i++) {
        int sig = crash_signals[i];
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_handler = crash_handler;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_NODEFER | SA_RESETHAND;
        sigaction(sig, &action, &previous_actions[sig]);
    }
}

void redfire_remove_crash_handlers(void) {
    for (unsigned i = 0; i < crash_signal_count; i++) {
        sigaction(crash_signals[i], &previous_actions[crash_signals[i]], NULL);
    }
}

#include <pthread.h>

void redfire_name_current_thread(const char *name) {
    pthread_setname_np(pthread_self(), name);
}
