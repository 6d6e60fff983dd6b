/* Function-scope statics whose numbers GCC changes: a new function with
 * its own 'count' is added last (GCC numbers them from the end). */
int f(void);
int g(void);
int h(void);

int f(void)
{
	static int count;

	return ++count;
}

int g(void)
{
	static int count = 3;

	return count += 2;
}

int h(void)
{
	static int count = 7;

	return count *= 3;
}
