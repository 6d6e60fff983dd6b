/* A global function's signature changes. */
int compute(int x);
int driver(int x);

__attribute__((noinline)) int compute(int x)
{
	return x * 2;
}

int driver(int x)
{
	return compute(x) + 1;
}
