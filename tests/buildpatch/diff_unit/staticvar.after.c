/* Static variables referenced by changed code stay the program's. */
int bump(int x);
int peek(void);

static int counter;
static int total = 5;

int bump(int x)
{
	static int calls;

	calls++;
	counter += 2 * x;
	total += calls;
	return counter;
}

int peek(void)
{
	return counter + total;
}
