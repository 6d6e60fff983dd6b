/* A static helper inlined into two callers. */
int a(int x);
int b(int x);
int c(int x);

static int helper(int x)
{
	return x * 7 + 1;
}

int a(int x)
{
	return helper(x) + 10;
}

int b(int x)
{
	return helper(x + 1) - 10;
}

int c(int x)
{
	return x + 42;
}
