/* A function with a static of its own is no longer inlined: its static
 * is used by another function than before, and is the same variable. */
int make(void);

static int next_id(void)
{
	static int id;

	return ++id;
}

int make(void)
{
	return next_id() * 2;
}
