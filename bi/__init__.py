"""Ready-made BI content for the analytics views: Apache Superset (bi/superset/), Power BI
and Tableau connection files (bi/powerbi/, bi/tableau/)."""
