from retail.kernel.errors import Conflict, NotFound


class CategoryNotFound(NotFound):
    error_code = "CATEGORY_NOT_FOUND"
    message = "Category not found"


class CategoryNameTaken(Conflict):
    error_code = "CATEGORY_NAME_TAKEN"
    message = "A category with this name already exists"
