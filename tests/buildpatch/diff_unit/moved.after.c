/* A function-scope static moves to another function (and grows): the
 * patch's would start from zero while old code keeps the other. */
int tick(void);
int tock(void);

__attribute__((noinline)) int tick(void)
{
	return 1;
}

int tock(void)
{
	static long count;

	return (int)++count + tick();
}
