/* A new function. */
int user(int x);

int user(int x)
{
	return x + 1;
}
