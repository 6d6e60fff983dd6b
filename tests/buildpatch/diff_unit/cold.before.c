/* A function split into hot and .cold parts; the change is in the cold
 * part only. */
#include <unistd.h>

int check(int fd, int x);
void note(const char *what);

volatile unsigned long notes;

__attribute__((cold, noinline)) void note(const char *what)
{
	notes += (unsigned long)what[0];
}

int check(int fd, int x)
{
	if (x < 0) {
		char c;

		note("check: slow path\n");
		if (read(fd, &c, 1) != 1)
			note("check: short read\n");
		return -x + 10;
	}
	return x + 10;
}
