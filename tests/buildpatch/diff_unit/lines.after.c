/* Lines inserted above a function with an assert: its code differs only
 * in the line number it passes to __assert_fail. */
#include <assert.h>

int first(int x);
int later(int x);

int first(int x)
{
	if (x > 100)
		x = 100;
	return x + 1;
}

int later(int x)
{
	assert(x > 0);
	return x * 2;
}
