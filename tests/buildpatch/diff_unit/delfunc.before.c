/* A function deleted. */
int keep(int x);
int gone(int x);

int keep(int x)
{
	return x + 1;
}

int gone(int x)
{
	return x * 9;
}
