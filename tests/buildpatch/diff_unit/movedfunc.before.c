/* A function moves to another file: this one only declares it now. */
int helper2(int x);
int caller(int x);

__attribute__((noinline)) int helper2(int x)
{
	return x * 13;
}

int caller(int x)
{
	return helper2(x) + 1;
}
