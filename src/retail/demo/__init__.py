"""A realistic demo catalogue, generated deterministically, and the seeder that loads it."""
