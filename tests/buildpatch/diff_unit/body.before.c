/* A body change: f's code changes, g stays. */
int f(int x);
int g(int x);

int f(int x)
{
	return x * 3 + 1;
}

int g(int x)
{
	return x - 7;
}
