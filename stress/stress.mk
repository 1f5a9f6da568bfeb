# Fault injection under load and soak (docs/reliability.md); included by the
# top Makefile.
#
#   make stress                    one round of faults under load (~2.5 min)
#   make stress STRESS_SECONDS=900 rounds of faults for 15 minutes
#   make soak                      10 minutes of mixed load, RSS and fds
#   make soak SOAK_SECONDS=3600

STRESS_SECONDS ?= 0
SOAK_SECONDS   ?= 600

.PHONY: stress soak

stress: all
	STRESS_SECONDS=$(STRESS_SECONDS) perl stress/stress.pl

soak: all
	SOAK_SECONDS=$(SOAK_SECONDS) perl stress/soak.pl
