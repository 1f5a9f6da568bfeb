# Reliability and security checks (issue 8): sanitizers, fuzzing, valgrind.
# Included by the top Makefile; see docs/security.md.
#
#   make test-asan       the whole suite against an ASan+UBSan build
#   make fuzz            every libFuzzer target for FUZZ_SECONDS (60) each
#   make fuzz-short      the same for 10 s each (CI)
#   make test-valgrind   prove t/module/ with nginx under valgrind memcheck

.PHONY: test-asan fuzz fuzz-short fuzz-build test-valgrind

test-asan: deps
	scripts/test-asan.sh

include fuzz/fuzz.mk

test-valgrind: deps all
	mk/test-valgrind.sh
