/* Constants: a #define used in code and a const table. */
#define LIMIT 10

int clamp(int x);
int lookup(int i);
int lookup2(int i);
int other(int i);

static const int table[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

int clamp(int x)
{
	return x > LIMIT ? LIMIT : x;
}

int lookup(int i)
{
	return table[i & 7] * 3;
}

int lookup2(int i)
{
	return table[(i + 1) & 7] - 1;
}

int other(int i)
{
	return i + 100;
}
