/* A function with an entry in a table of code addresses (as rewire's
 * static key sites), and a new constructor. */
int work(int x);
int ready;

int work(int x)
{
	__asm__ volatile("1: nop\n\t"
			 ".pushsection __my_sites, \"aw\"\n\t"
			 ".quad 1b\n\t"
			 ".popsection");
	return x + 2;
}

static __attribute__((constructor)) void setup(void)
{
	ready = 1;
}
