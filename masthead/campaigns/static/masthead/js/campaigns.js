/* campaigns: per-reader choices from localStorage */
