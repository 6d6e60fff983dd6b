/* A global's initial value changes. */
int limit = 20;
int get_limit(void);

int get_limit(void)
{
	return limit;
}
