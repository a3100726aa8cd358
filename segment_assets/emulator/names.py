"""Readable, deterministic names for generated segments."""

from __future__ import annotations

LABELS = (
    "Sneakers", "Running", "Outdoor", "Yoga", "Cycling", "Hiking", "Tennis", "Basketball",
    "Football", "Swimming", "Skiing", "Camping", "Fitness", "Streetwear", "Denim",
    "Accessories", "Watches", "Sunglasses", "Backpacks", "Jackets", "Hoodies", "T-Shirts",
    "Socks", "Sandals", "Boots", "Kids", "Womenswear", "Menswear", "Sale", "New Arrivals",
    "Premium", "Eco", "Vintage", "Limited Edition", "Gift Cards", "Home", "Kitchen", "Beauty",
    "Skincare", "Fragrance", "Electronics", "Audio", "Gaming", "Books", "Music", "Travel",
    "Pets", "Garden", "Coffee", "Snacks", "Wellness", "Nutrition", "Jewelry", "Bags",
    "Rain Gear", "Trail", "Urban", "Classic", "Performance", "Lifestyle",
)  # fmt: skip

QUALIFIERS = (
    "", "Basics", "Deals", "Lovers", "Essentials", "Pro", "Weekend", "Winter", "Summer",
    "Collectors", "Starters", "Plus", "Daily", "Club", "Outlet", "Bundle",
)  # fmt: skip

PRODUCTS = (
    "Trail Runner", "Cloud Walker", "Air Glide", "Summit Jacket", "City Backpack", "Flex Tee",
    "Storm Shell", "Aero Cap", "Canyon Boot", "Harbor Hoodie", "Pulse Watch", "Echo Buds",
    "Nomad Duffel", "Drift Sandal", "Peak Fleece", "Metro Jean", "Zen Mat", "Volt Bottle",
)  # fmt: skip

COLORS = ("Black", "White", "Navy", "Olive", "Sand", "Red", "Grey", "Teal", "Coral", "Stone")

USERCOM_DEFAULTS = (
    ("Active", "Users who have visited your website at least once in the last 30 days."),
    ("New", "Users who have visited your website for the first time in the last 24 hours."),
    (
        "New with email",
        "Users who first visited your website in the last 24 hours and have provided an "
        "email address.",
    ),
    ("With email", "Users whose email address you have."),
    ("Slipping away", "Users who have not visited your page within the last 30 days."),
)

AUDIENCES = (
    "Newsletter subscribers", "Cart abandoners", "VIP customers", "Trial users",
    "Churn risk", "Repeat buyers", "Webinar attendees", "Mobile visitors", "Coupon users",
    "Reactivated users", "High spenders", "Survey respondents", "Event visitors",
    "Loyalty members", "Free plan users", "Leads without email",
)  # fmt: skip

MARKETS = ("PL", "DE", "UK", "US", "FR", "ES", "IT", "NL", "SE", "CZ", "Global")

ONESIGNAL_DEFAULTS = ("Subscribed Users", "Active Users", "Engaged Users", "Inactive Users")
ONESIGNAL_QUICKSTART = ("Engaged Last 7 Days", "New Users", "Lapsed 30 Days", "Power Users")


def label_name(j: int) -> str:
    """Name of label number ``j`` (unique for every ``j``)."""
    base = LABELS[j % len(LABELS)]
    rest = j // len(LABELS)
    qual = QUALIFIERS[rest % len(QUALIFIERS)]
    name = f"{base} {qual}" if qual else base
    return name if rest < len(QUALIFIERS) else f"{name} {rest // len(QUALIFIERS) + 1}"


def asset_name(j: int) -> str:
    """Name of asset number ``j`` (a product with a colour and a SKU)."""
    product = PRODUCTS[j % len(PRODUCTS)]
    color = COLORS[(j // len(PRODUCTS)) % len(COLORS)]
    return f"{product} {color} (SKU {10000 + j})"


def audience_name(j: int) -> str:
    """Name of a custom User.com / OneSignal segment number ``j``."""
    audience = AUDIENCES[j % len(AUDIENCES)]
    market = MARKETS[(j // len(AUDIENCES)) % len(MARKETS)]
    cycle = j // (len(AUDIENCES) * len(MARKETS))
    name = f"{audience} - {market}"
    return name if cycle == 0 else f"{name} ({cycle + 1})"
