/* A body change: f's code changes (and it gains a string literal, which
 * renumbers GCC's labels of every literal after it); the functions after
 * it, with literals, a switch table, a jump table and a floating-point
 * constant, stay the same. */
#include <stdio.h>

int f(int x);
int g(int x);
const char *name(int i);
int dispatch(int op, int x);
double scale(double v);

int f(int x)
{
	return x * 3 + 1;
}

int g(int x)
{
	printf("g: %d\n", x);
	return x - 7;
}

const char *name(int i)
{
	switch (i) {
	case 0:
		return "zero";
	case 1:
		return "one";
	case 2:
		return "two";
	case 3:
		return "three";
	default:
		return "many";
	}
}

int dispatch(int op, int x)
{
	switch (op) {
	case 0:
		return f(x);
	case 1:
		return g(x);
	case 2:
		return puts("two");
	case 3:
		return x * 17;
	case 4:
		return printf("%d\n", x);
	case 5:
		return x ^ 0x55;
	default:
		return -1;
	}
}

double scale(double v)
{
	return v * 3.25;
}
