# mk/coverage.mk: line coverage of the test suite per src/ part (make coverage).
# The header is amalgamated with #line directives, so gcov attributes lines to src/NN_*.c.
.PHONY: coverage
coverage: $(B)/amalgamate $(B)/tests_gen.c
	@mkdir -p $(B)/cov
	$(B)/amalgamate --lines -o $(B)/cov/fti.h src
	gcc -std=c99 -O0 -g --coverage -DFTI_TEST_HEADER='"../$(B)/cov/fti.h"' -I$(B) -Itests \
	    -o $(B)/cov/fti-test tests/main.c -lm -lpthread
	rm -f $(B)/cov/*.gcda; ./$(B)/cov/fti-test > $(B)/cov/test.log 2>&1; tail -1 $(B)/cov/test.log
	cd $(B)/cov && gcov -o . fti-test-main.gcda > gcov.txt 2>&1 || true
	@awk '/^File .*src\//{f=$$2} /^Lines executed/{if(f!=""){print f, $$0; f=""}}' $(B)/cov/gcov.txt | \
	    sed "s/'//g; s/Lines executed://" | sort | tee $(B)/cov/summary.txt
