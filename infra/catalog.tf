# ---------------------------------------------------------------------------------------------------------------
# Catalog and SQL: the Glue database and tables of sql/ddl, and the Athena workgroup analysts query in.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_glue_catalog_database" "this" {
  name        = local.glue_database
  description = "${var.name}: trips, routes and weekly tables (sql/ddl)"
}

resource "aws_glue_catalog_table" "this" {
  for_each = local.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  table_type    = "EXTERNAL_TABLE"
  # Every table is a Delta table (table_type = DELTA): Athena reads its columns, partitions and files from the Delta
  # log, so no partition is registered; the columns here are sql/ddl's, for the catalog's readers.
  parameters = each.value.parameters

  storage_descriptor {
    location = "${local.lake_root}/${each.value.location}/"

    dynamic "columns" {
      for_each = each.value.columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = local.athena_workgroup
  description   = "${var.name}: queries over the lake; results expire after ${var.athena_results_expiration_days} days"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${module.lake_bucket.id}/${local.athena_results}"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }
  }
}
