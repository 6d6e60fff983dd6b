/* Lines inserted above a function with an assert: its code differs only
 * in the line number it passes to __assert_fail. */
#include <assert.h>

int first(int x);
int later(int x);

int first(int x)
{
	return x + 1;
}

int later(int x)
{
	assert(x > 0);
	return x * 2;
}
