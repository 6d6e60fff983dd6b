/* A variable's type (and size) changes. */
int level_up(void);

static int level = 1;

int level_up(void)
{
	return ++level;
}
