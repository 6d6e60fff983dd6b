/* A function-scope static moves to another function (and grows): the
 * patch's would start from zero while old code keeps the other. */
int tick(void);
int tock(void);

__attribute__((noinline)) int tick(void)
{
	static int count;

	return ++count;
}

int tock(void)
{
	return tick() + 1;
}
