/* A struct's layout changes. */
struct item {
	long key;
	long value[4];
	long extra;
	int flags;
};

int item_flags(const struct item *it);

int item_flags(const struct item *it)
{
	return it->flags;
}
