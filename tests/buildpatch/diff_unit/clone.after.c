/* A clone (.constprop) changes: its callers come along. */
int one(int x);
int two(int x);
int three(int x);

static __attribute__((noinline)) int scale(int x, int factor, int bias)
{
	return x * factor - bias * x;
}

int one(int x)
{
	return scale(x, 3, 5) + 1;
}

int two(int x)
{
	return scale(x + 1, 3, 5) - 1;
}

int three(int x)
{
	return x * 11;
}
