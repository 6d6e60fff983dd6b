// C++: a class gains a member; a virtual method changes.
namespace shop
{
class Item {
    public:
	virtual ~Item() = default;
	virtual int price() const;
	int base_ = 10;
	int tax_ = 0;
};

int Item::price() const
{
	return base_ * 2 + tax_;
}
} // namespace shop

int price_of(const shop::Item &it);

int price_of(const shop::Item &it)
{
	return it.price();
}
