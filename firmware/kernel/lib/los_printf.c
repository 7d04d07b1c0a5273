/* Minimal formatted output, no heap, no newlib stdio (so nothing pulls in syscalls). */
#include "los_printf.h"

typedef void (*emit_fn)(void *ctx, char c);

struct sbuf {
    char *buf;
    UINT32 size;
    UINT32 len;
};

static void emit_console(void *ctx, char c)
{
    (void)ctx;
    memhil_console_putc(c);
}

static void emit_buf(void *ctx, char c)
{
    struct sbuf *s = ctx;
    if (s->len + 1 < s->size) {
        s->buf[s->len] = c;
    }
    s->len++;
}

static int emit_num(emit_fn out, void *ctx, unsigned long long v, unsigned base, int upper, int neg,
                    const char *prefix, int width, int left, int zero)
{
    char tmp[24];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    int count = 0;
    int plen = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v != 0);
    if (neg) {
        prefix = "-";
    }
    if (prefix != NULL) {
        while (prefix[plen] != '\0') {
            plen++;
        }
    }
    int pad = width - n - plen;
    if (!left && !zero) {
        for (; pad > 0; pad--, count++) {
            out(ctx, ' ');
        }
    }
    for (int i = 0; i < plen; i++, count++) {
        out(ctx, prefix[i]);
    }
    if (!left && zero) {
        for (; pad > 0; pad--, count++) {
            out(ctx, '0');
        }
    }
    while (n > 0) {
        out(ctx, tmp[--n]);
        count++;
    }
    for (; pad > 0; pad--, count++) {
        out(ctx, ' ');
    }
    return count;
}

static int format(emit_fn out, void *ctx, const char *fmt, va_list ap)
{
    int count = 0;
    for (; *fmt != '\0'; fmt++) {
        if (*fmt != '%') {
            out(ctx, *fmt);
            count++;
            continue;
        }
        fmt++;
        int left = 0, zero = 0, width = 0, lng = 0;
        for (;; fmt++) {
            if (*fmt == '-') {
                left = 1;
            } else if (*fmt == '0') {
                zero = 1;
            } else {
                break;
            }
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }
        while (*fmt == 'l' || *fmt == 'z') {
            lng += (*fmt == 'z') ? (sizeof(size_t) > 4 ? 2 : 1) : 1;
            fmt++;
        }
        unsigned long long u;
        long long s;
        switch (*fmt) {
        case 'd':
        case 'i':
            s = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
            count += emit_num(out, ctx, s < 0 ? (unsigned long long)(-s) : (unsigned long long)s, 10, 0, s < 0,
                              NULL, width, left, zero);
            break;
        case 'u':
        case 'x':
        case 'X':
            u = lng >= 2 ? va_arg(ap, unsigned long long)
                : lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            count += emit_num(out, ctx, u, *fmt == 'u' ? 10 : 16, *fmt == 'X', 0, NULL, width, left, zero);
            break;
        case 'p':
            u = (unsigned long long)(UINTPTR)va_arg(ap, void *);
            count += emit_num(out, ctx, u, 16, 0, 0, "0x", width, left, zero);
            break;
        case 'c':
            out(ctx, (char)va_arg(ap, int));
            count++;
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            int len = 0;
            if (str == NULL) {
                str = "(null)";
            }
            while (str[len] != '\0') {
                len++;
            }
            for (int pad = width - len; !left && pad > 0; pad--, count++) {
                out(ctx, ' ');
            }
            for (int i = 0; i < len; i++, count++) {
                out(ctx, str[i]);
            }
            for (int pad = width - len; left && pad > 0; pad--, count++) {
                out(ctx, ' ');
            }
            break;
        }
        case '%':
            out(ctx, '%');
            count++;
            break;
        case '\0':
            return count;
        default:
            out(ctx, '%');
            out(ctx, *fmt);
            count += 2;
            break;
        }
    }
    return count;
}

int memhil_vprintf(const char *fmt, va_list ap)
{
    return format(emit_console, NULL, fmt, ap);
}

int memhil_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = format(emit_console, NULL, fmt, ap);
    va_end(ap);
    return n;
}

int memhil_snprintf(char *buf, UINT32 size, const char *fmt, ...)
{
    struct sbuf s = {buf, size, 0};
    va_list ap;
    va_start(ap, fmt);
    int n = format(emit_buf, &s, fmt, ap);
    va_end(ap);
    if (size > 0) {
        buf[s.len < size ? s.len : size - 1] = '\0';
    }
    return n;
}
