/* A function deleted. */
int keep(int x);

int keep(int x)
{
	return x + 2;
}
