/* A static function's signature changes: every function that uses it
 * comes along, whether or not its code changes (calc_addr's does not). */
int p(int x);
void *calc_addr(void);

static __attribute__((noipa)) int calc(int x)
{
	return x * 3;
}

int p(int x)
{
	return (int)calc(x) + 1;
}

void *calc_addr(void)
{
	return (void *)calc;
}
