"""Neural-network building blocks: masked layers, gated blocks, attention, conditioners."""
