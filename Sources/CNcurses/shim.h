// libncursesw for Swift: the wide-character API plus small helpers for what Swift cannot import
// (function-like macros, attribute constants, global variables). The crash-safe terminal restore
// lives in CTerminalSupport (it needs storage of its own).
#ifndef REDFIRE_CNCURSES_SHIM_H
#define REDFIRE_CNCURSES_SHIM_H

// SwiftPM drops pkg-config's -D_XOPEN_SOURCE; the wide-character API needs it.
#define NCURSES_WIDECHAR 1
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif

#include <locale.h>
#include <langinfo.h>
#include <stdio.h>
#include <wchar.h>
#include <ncursesw/curses.h>

static inline WINDOW *redfire_stdscr(void) { return stdscr; }
/// A curses screen on the process's standard output and input.
static inline SCREEN *redfire_newterm(void) { return newterm(NULL, stdout, stdin); }
static inline void redfire_flush_stdout(void) { fflush(stdout); }
static inline int redfire_lines(void) { return LINES; }
static inline int redfire_cols(void) { return COLS; }
static inline int redfire_colors(void) { return COLORS; }

static inline attr_t redfire_attr_normal(void) { return A_NORMAL; }
static inline attr_t redfire_attr_bold(void) { return A_BOLD; }
static inline attr_t redfire_attr_dim(void) { return A_DIM; }
static inline attr_t redfire_attr_underline(void) { return A_UNDERLINE; }
static inline attr_t redfire_attr_reverse(void) { return A_REVERSE; }

/// The character set of the current locale (after setlocale(LC_ALL, "")), e.g. "UTF-8".
static inline const char *redfire_codeset(void) { return nl_langinfo(CODESET); }

#endif
