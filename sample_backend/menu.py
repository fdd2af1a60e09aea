"""The PizzaShack menu (as in the WSO2 API Manager samples)."""

from __future__ import annotations

MENU: tuple[dict[str, str], ...] = (
    {
        "name": "BBQ Chicken Bacon",
        "description": "Grilled white chicken, hickory-smoked bacon and fresh sliced onions in barbeque sauce",
        "price": "13.99",
        "icon": "/images/6.png",
    },
    {
        "name": "Chicken Parmesan",
        "description": "Grilled chicken, fresh tomatoes, feta and mozzarella cheese",
        "price": "12.99",
        "icon": "/images/1.png",
    },
    {
        "name": "Chilly Chicken Cordon Bleu",
        "description": "Spinash Alfredo sauce topped with grilled chicken, ham, onions and mozzarella",
        "price": "11.99",
        "icon": "/images/10.png",
    },
    {
        "name": "Double Bacon 6Cheese",
        "description": "Hickory-smoked bacon, Julienne cut Canadian bacon, Parmesan, mozzarella, Romano, Asiago and Fontina cheese",
        "price": "15.99",
        "icon": "/images/9.png",
    },
    {
        "name": "Garden Fresh",
        "description": "Slices onions and green peppers, gourmet mushrooms, black olives and ripe Roma tomatoes",
        "price": "10.99",
        "icon": "/images/3.png",
    },
    {
        "name": "Hawaiian BBQ Chicken",
        "description": "Grilled white chicken, hickory-smoked bacon, barbeque sauce topped with sweet pine-apple",
        "price": "12.99",
        "icon": "/images/7.png",
    },
)
