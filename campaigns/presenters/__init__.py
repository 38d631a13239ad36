"""What the campaign pages of the admin show, computed apart from the ModelAdmins: the dry
run's and the report's figures in words, and the report's charts."""
