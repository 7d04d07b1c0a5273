#include "shell.h"
#include "los_printf.h"
UINT32 OsShellCmdMemUsed(INT32 argc, const CHAR *argv[]) { (void)argc; (void)argv; return 0; }
UINT32 OsShellCmdMemStat(INT32 argc, const CHAR *argv[]) { (void)argc; (void)argv; return 0; }
UINT32 OsShellCmdFree(INT32 argc, const CHAR *argv[]) { (void)argc; (void)argv; return 0; }
UINT32 OsShellCmdMemCheck(INT32 argc, const CHAR *argv[]) { (void)argc; (void)argv; return 0; }
