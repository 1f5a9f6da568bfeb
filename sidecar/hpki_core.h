/*
 * hpki-signd / hpki-admin: shared small utilities (logging, buffers).
 */

#ifndef HPKI_CORE_H
#define HPKI_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>


#define HPKI_LOG_ERROR  0
#define HPKI_LOG_WARN   1
#define HPKI_LOG_INFO   2
#define HPKI_LOG_DEBUG  3

#define HPKI_USER_MAX   64


typedef struct {
    u_char  *data;
    size_t   len;
    size_t   cap;
} hpki_buf_t;


extern int          hpki_log_level;
extern const char  *hpki_log_role;

void hpki_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int hpki_log_level_parse(const char *s);

int hpki_buf_reserve(hpki_buf_t *b, size_t more);
int hpki_buf_append(hpki_buf_t *b, const void *p, size_t n);
void hpki_buf_consume(hpki_buf_t *b, size_t n);
void hpki_buf_free(hpki_buf_t *b);

int hpki_user_valid(const char *s, size_t len);
void hpki_hex(char *out, const u_char *p, size_t n);
int hpki_read_file(const char *path, u_char **out, size_t *len);
void hpki_harden_process(void);

#endif /* HPKI_CORE_H */
