/* UART shell on the console: line editing, command table, prompt "LiteOS # ". */
#ifndef SHELL_H
#define SHELL_H

#include "los_typedef.h"

#define SHELL_PROMPT "LiteOS # "
#define SHELL_MAX_ARGS 8

typedef UINT32 (*shell_cmd_fn)(INT32 argc, const CHAR *argv[]);

struct shell_cmd {
    const char *name;
    shell_cmd_fn fn;
    const char *help;
};

/* Prints the prompt; call once after the application's own start-up output. */
void shell_start(void);
/* Processes received console bytes; runs a command per complete line. */
void shell_poll(void);
/* TRUE while a line is being typed (bytes since the last line end, the latest less than
 * SHELL_TYPING_MS ago): the idle loop then sleeps at most 1 ms. Under QEMU's -icount sleep=off, an idle
 * core jumps to its next deadline at once, and the emulator hands the UART its next byte only after the
 * core has read the previous one: one long sleep per byte would make a command line take seconds of
 * virtual time. */
BOOL shell_typing(UINT64 now_ms);
#define SHELL_TYPING_MS 100U
/* Runs one command line (also used by tests); returns the command's result. */
UINT32 shell_exec(char *line);

/* Memory commands (shell_mem.c). */
UINT32 OsShellCmdMemUsed(INT32 argc, const CHAR *argv[]);
UINT32 OsShellCmdMemStat(INT32 argc, const CHAR *argv[]);
UINT32 OsShellCmdFree(INT32 argc, const CHAR *argv[]);
UINT32 OsShellCmdMemCheck(INT32 argc, const CHAR *argv[]);

#endif
