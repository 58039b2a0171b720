"""Ready-made BI content for the analytics views: Apache Superset (runner/bi/superset/), Power BI
and Tableau connection files (runner/bi/powerbi/, runner/bi/tableau/)."""
