/* Basic LiteOS type names (LiteOS 5.0.0 los_typedef.h subset). */
#ifndef LOS_TYPEDEF_H
#define LOS_TYPEDEF_H

#include <stddef.h>
#include <stdint.h>

typedef unsigned char UINT8;
typedef unsigned short UINT16;
typedef unsigned int UINT32;
typedef unsigned long long UINT64;
typedef signed int INT32;
typedef char CHAR;
typedef uintptr_t UINTPTR;
typedef unsigned int BOOL;
#define VOID void
#define STATIC static
#define INLINE inline

#ifndef TRUE
#define TRUE 1U
#define FALSE 0U
#endif

#define LOS_OK 0U
#define LOS_NOK 1U
#define OS_NULL_INT 0xFFFFFFFFU
#define OS_ERROR ((UINT32)-1)

#endif
