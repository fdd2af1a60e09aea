"""The PizzaShack sample backend: a menu, an echo of what reached it, and /healthz."""
