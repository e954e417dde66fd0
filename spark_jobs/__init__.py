"""Spark jobs of triplake. Imports only pyspark and the standard library: this package ships to EMR as one zip."""
