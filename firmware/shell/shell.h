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
/* Runs one command line (also used by tests); returns the command's result. */
UINT32 shell_exec(char *line);

/* Memory commands (shell_mem.c). */
UINT32 OsShellCmdMemUsed(INT32 argc, const CHAR *argv[]);
UINT32 OsShellCmdMemStat(INT32 argc, const CHAR *argv[]);
UINT32 OsShellCmdFree(INT32 argc, const CHAR *argv[]);
UINT32 OsShellCmdMemCheck(INT32 argc, const CHAR *argv[]);

#endif
