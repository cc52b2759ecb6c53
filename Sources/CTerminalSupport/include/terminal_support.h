#ifndef REDFIRE_TERMINAL_SUPPORT_H
#define REDFIRE_TERMINAL_SUPPORT_H

/// Remembers the terminal's modes on `fd` before curses changes them.
void redfire_save_terminal(int fd);

/// Async-signal-safe: leaves the alternate screen, resets attributes, shows the cursor and puts the
/// saved terminal modes back (write(2) and tcsetattr(3) only).
void redfire_restore_terminal_now(int fd);

/// On SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and SIGTRAP: restore the terminal, then hand the
/// signal to the handler that was installed before (the runtime's crash reporter or the default).
void redfire_install_crash_handlers(void);

/// Puts back the handlers that were there before `redfire_install_crash_handlers`.
void redfire_remove_crash_handlers(void);

/// Names the calling thread (visible in `top -H`, /proc/PID/task/TID/comm and profilers; 15 bytes max).
void redfire_name_current_thread(const char *name);

#endif
