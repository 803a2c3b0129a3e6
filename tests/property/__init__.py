"""Property tests of the attribution engine over moto: order independence (domain rule 3)."""
