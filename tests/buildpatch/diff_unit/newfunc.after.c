/* A new function. */
int user(int x);
int added(int x);

__attribute__((noinline)) int added(int x)
{
	return x * x + 3;
}

int user(int x)
{
	return added(x) + 1;
}
