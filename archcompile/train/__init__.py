"""Training and evaluation on Fashion-MNIST."""
