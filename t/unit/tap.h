
/*
 * TAP for the module's C unit tests: t_ok() and t_is() print one test
 * line each; main() prints the plan ("1..t_num") and exits with t_failed
 * != 0 on a failure.
 */


#ifndef _T_UNIT_TAP_H_INCLUDED_
#define _T_UNIT_TAP_H_INCLUDED_


#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static int  t_num;
static int  t_failed;


static inline void
t_ok(int cond, const char *fmt, ...)
{
    va_list  args;

    t_num++;

    if (!cond) {
        t_failed++;
    }

    printf("%sok %d - ", cond ? "" : "not ", t_num);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");
    fflush(stdout);
}


static inline void
t_is(const char *got, const char *expected, const char *name)
{
    int  eq;

    eq = (got != NULL && expected != NULL && strcmp(got, expected) == 0);

    t_ok(eq, "%s", name);

    if (!eq) {
        printf("#   got:      '%s'\n#   expected: '%s'\n",
               got ? got : "(null)", expected ? expected : "(null)");
    }
}


#endif /* _T_UNIT_TAP_H_INCLUDED_ */
