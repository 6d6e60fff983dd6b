/* A global function's signature changes. */
long compute(int x, int y);
int driver(int x);

__attribute__((noinline)) long compute(int x, int y)
{
	return (long)x * 2 + y;
}

int driver(int x)
{
	return (int)compute(x, 0) + 1;
}
